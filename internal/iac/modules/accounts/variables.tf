variable "unit_name" {
  description = "Name of the organizational unit holding the environment accounts."
  type        = string
}

variable "accounts" {
  description = "Accounts to create, by environment name, with the root e-mail address of each (unique per account)."
  type = map(object({
    email = string
  }))
}
