output "plan_role_arn" {
  description = "Role GitHub Actions assumes to plan."
  value       = aws_iam_role.plan.arn
}

output "apply_role_arn" {
  description = "Role GitHub Actions assumes to apply."
  value       = aws_iam_role.apply.arn
}
