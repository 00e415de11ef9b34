variable "name" {
  description = "Name of the network, <environment>-<region>."
  type        = string
}

variable "region" {
  description = "AWS region of the network (the root's provider region; a variable rather than the aws_region data source, whose attribute names differ between provider 5.x and 6.x)."
  type        = string
}

variable "cidr" {
  description = "Address range of the VPC, from runway.lock.hcl."
  type        = string
}

variable "zones" {
  description = "Subnet ranges by availability zone and tier, from runway.lock.hcl; every zone has a public tier."
  type        = map(map(string))
}

variable "nat_tiers" {
  description = "Tiers whose subnets reach the internet through a NAT gateway; other tiers except public are isolated."
  type        = list(string)
  default     = ["private"]
}

variable "nat_per_zone" {
  description = "One NAT gateway per zone (survives the loss of a zone) instead of one for the network."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 90
}
