locals {
  name = "app"
}

resource "aws_s3_bucket" "logs" {
  bucket = "${local.name}-logs"
}

output "bucket" {
  value = aws_s3_bucket.logs.id
}

module "m" {
  source = "./modules/m"

  size = 3
}

output "m" {
  value = { for k, v in { a = module.m.id } : k => v }
}
