resource "aws_cloudwatch_log_group" "app" {
  name       = "/app"
  kms_key_id = var.key_arn
}

variable "key_arn" {
  type = string
}
