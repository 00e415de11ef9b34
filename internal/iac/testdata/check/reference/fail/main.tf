locals {
  name = "app"
}

resource "aws_s3_bucket" "logs" {
  bucket = "${local.nme}-logs"
}

output "bucket" {
  value = aws_s3_bucket.log.id
}

output "region" {
  value = var.region
}

module "m" {
  source = "./modules/m"

  colour = "blue"
}

output "m" {
  value = module.m.missing
}
