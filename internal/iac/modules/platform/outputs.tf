output "zone_id" {
  description = "Route 53 zone ID of the environment."
  value       = aws_route53_zone.environment.zone_id
}

output "certificate_arn" {
  description = "ACM certificate for the environment and its hosts."
  value       = aws_acm_certificate_validation.environment.certificate_arn
}

output "cluster_name" {
  description = "ECS cluster services run in."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Route 53 zone ID of the load balancer, for alias records."
  value       = aws_lb.this.zone_id
}

output "load_balancer_security_group_id" {
  description = "Security group of the load balancer; services accept traffic from it."
  value       = aws_security_group.load_balancer.id
}

output "https_listener_arn" {
  description = "HTTPS listener services add host rules to."
  value       = aws_lb_listener.https.arn
}
