resource "aws_db_instance" "db" {
  username = "app"
  password = var.db_password
}

variable "db_password" {
  type      = string
  sensitive = true
}
