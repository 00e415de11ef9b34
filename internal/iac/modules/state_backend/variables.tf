variable "bucket_name" {
  description = "Name of the state bucket (globally unique)."
  type        = string
}
