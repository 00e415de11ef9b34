output "repository_url" {
  description = "Registry to push the service's images to."
  value       = aws_ecr_repository.this.repository_url
}

output "execution_role_arn" {
  description = "Task execution role."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Role the service's code runs as."
  value       = aws_iam_role.task.arn
}

output "security_group_id" {
  description = "Security group of the service's tasks."
  value       = aws_security_group.tasks.id
}

output "log_group_name" {
  description = "Log group of the service."
  value       = aws_cloudwatch_log_group.this.name
}

output "secret_arns" {
  description = "Secrets Manager ARN of each secret."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}
