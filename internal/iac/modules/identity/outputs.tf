output "group_ids" {
  description = "Identity Center group ID of each Runway role; add people to these groups."
  value       = { for role, group in aws_identitystore_group.role : role => group.group_id }
}

output "permission_set_arns" {
  description = "Permission set ARN of each Runway role."
  value       = { for role, set in aws_ssoadmin_permission_set.role : role => set.arn }
}
