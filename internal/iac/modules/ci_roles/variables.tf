variable "environment" {
  description = "Environment whose account the roles live in."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository allowed to assume the roles, as owner/name."
  type        = string
}
