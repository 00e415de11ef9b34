# What one service needs in an environment-region before Runway deploys it:
# an image registry, a DNS record for its host names, roles, secret
# containers and logs. Runway's aws driver owns what is per release: each
# release's target group (its deregistration delay is the release's
# drain_timeout), the listener rules forwarding to them by weight, task
# definitions and ECS services (docs/aws.md).

locals {
  name = "${var.environment}-${var.name}"
}

resource "aws_ecr_repository" "this" {
  name                 = "${var.project}/${var.name}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.images_kept} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.images_kept
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_route53_record" "host" {
  for_each = toset([for host in var.hosts : host if endswith(host, ".${var.zone_name}")])

  zone_id = var.zone_id
  name    = each.key
  type    = "A"

  alias {
    name                   = var.load_balancer_dns_name
    zone_id                = var.load_balancer_zone_id
    evaluate_target_health = true
  }
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "Traffic from the load balancer to ${var.name} on its port."
  vpc_id      = var.vpc_id

  ingress {
    description     = "From the load balancer"
    from_port       = var.port
    to_port         = var.port
    protocol        = "tcp"
    security_groups = [var.load_balancer_security_group_id]
  }

  egress {
    description = "HTTPS out through the NAT gateway (registries, APIs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "To the VPC (databases in the data tier, other services)"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}

# Containers only: values are put with runway secret put, never written here.
resource "aws_secretsmanager_secret" "this" {
  for_each = toset(var.secrets)

  name        = "${var.project}/${var.environment}/${var.name}/${each.key}"
  description = "Secret ${each.key} of ${var.name} in ${var.environment}."
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/runway/${var.environment}/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

data "aws_iam_policy_document" "tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  description        = "ECS pulls ${var.name}'s image, writes its logs and reads its secrets."
  assume_role_policy = data.aws_iam_policy_document.tasks_trust.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_secrets" {
  count = length(var.secrets) > 0 ? 1 : 0

  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for secret in aws_secretsmanager_secret.this : secret.arn]
  }
}

resource "aws_iam_role_policy" "read_secrets" {
  count = length(var.secrets) > 0 ? 1 : 0

  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_secrets[0].json
}

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  description        = "The role ${var.name}'s code runs as; grant it what the service calls."
  assume_role_policy = data.aws_iam_policy_document.tasks_trust.json
}
