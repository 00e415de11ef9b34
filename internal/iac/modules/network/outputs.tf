output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "Address range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "subnet_ids" {
  description = "Subnet IDs by tier, one per zone in zone order."
  value = {
    for tier in distinct([for s in local.subnets : s.tier]) :
    tier => [for key in sort(keys(local.subnets)) : aws_subnet.this[key].id if local.subnets[key].tier == tier]
  }
}

output "logs_kms_key_arn" {
  description = "KMS key that encrypts the log groups of this network's environment."
  value       = aws_kms_key.logs.arn
}
