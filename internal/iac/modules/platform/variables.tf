variable "name" {
  description = "Name of the platform, <environment>-<region>."
  type        = string
}

variable "zone_name" {
  description = "DNS zone of the environment, <environment>.<domain>."
  type        = string
}

variable "parent_zone_name" {
  description = "The root domain whose zone delegates to the environment's zone."
  type        = string
}

variable "vpc_id" {
  description = "VPC the load balancer runs in."
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the VPC; the load balancer only talks to it."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the load balancer, one per zone."
  type        = list(string)
}

variable "logs_kms_key_arn" {
  description = "KMS key encrypting log groups."
  type        = string
}

variable "protected" {
  description = "Protected environments keep their load balancer from being deleted."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days platform logs are kept."
  type        = number
  default     = 90
}
