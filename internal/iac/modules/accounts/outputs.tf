output "account_ids" {
  description = "AWS account ID of each environment."
  value       = { for name, account in aws_organizations_account.environment : name => account.id }
}

output "organization_id" {
  description = "ID of the AWS organization."
  value       = data.aws_organizations_organization.this.id
}
