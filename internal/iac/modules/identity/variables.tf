variable "project" {
  description = "Project name, the prefix of group names."
  type        = string
}

variable "account_ids" {
  description = "AWS account ID of each environment."
  type        = map(string)
}

variable "session_duration" {
  description = "How long a sign-in session lasts, as an ISO 8601 duration."
  type        = string
  default     = "PT8H"
}
