resource "aws_db_instance" "db" {
  username = "app"
  password = "hunter2hunter2"
}

variable "api_token" {
  type    = string
  default = "tok_123"
}
