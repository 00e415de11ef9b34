variable "project" {
  description = "Project name, the prefix of registries and secrets."
  type        = string
}

variable "environment" {
  description = "Environment name."
  type        = string
}

variable "name" {
  description = "Service name."
  type        = string
}

variable "port" {
  description = "Port the service listens on in its container."
  type        = number
}

variable "hosts" {
  description = "Host names routed to the service; those inside the environment's zone get DNS records."
  type        = list(string)
}

variable "secrets" {
  description = "Names of the service's secrets; one Secrets Manager container each."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the environment-region."
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the VPC; tasks may reach anything in it."
  type        = string
}

variable "zone_id" {
  description = "Route 53 zone of the environment."
  type        = string
}

variable "zone_name" {
  description = "Name of the environment's zone."
  type        = string
}

variable "https_listener_arn" {
  description = "HTTPS listener of the environment's load balancer."
  type        = string
}

variable "load_balancer_dns_name" {
  description = "DNS name of the load balancer."
  type        = string
}

variable "load_balancer_zone_id" {
  description = "Route 53 zone ID of the load balancer."
  type        = string
}

variable "load_balancer_security_group_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting the log group."
  type        = string
}

variable "images_kept" {
  description = "Images kept in the registry; older ones expire."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Days logs are kept."
  type        = number
  default     = 30
}
