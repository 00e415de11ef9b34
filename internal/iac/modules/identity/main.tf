# IAM Identity Center permission sets matching Runway's roles, one group per
# role, and the assignments of groups to environment accounts.

data "aws_ssoadmin_instances" "this" {}

locals {
  instance_arn      = tolist(data.aws_ssoadmin_instances.this.arns)[0]
  identity_store_id = tolist(data.aws_ssoadmin_instances.this.identity_store_ids)[0]

  # Role name => managed policy and the environments it applies to.
  roles = merge(
    {
      global_admin = { policy = "arn:aws:iam::aws:policy/AdministratorAccess", environments = keys(var.account_ids) }
      read_only    = { policy = "arn:aws:iam::aws:policy/ReadOnlyAccess", environments = keys(var.account_ids) }
    },
    { for env in keys(var.account_ids) : "${env}_admin" => { policy = "arn:aws:iam::aws:policy/AdministratorAccess", environments = [env] } },
    { for env in keys(var.account_ids) : "${env}_deployer" => { policy = "arn:aws:iam::aws:policy/PowerUserAccess", environments = [env] } },
  )

  assignments = merge([
    for role, spec in local.roles : {
      for env in spec.environments : "${role}/${env}" => { role = role, environment = env }
    }
  ]...)
}

resource "aws_ssoadmin_permission_set" "role" {
  for_each = local.roles

  name             = each.key
  description      = "Runway role ${each.key}"
  instance_arn     = local.instance_arn
  session_duration = var.session_duration
}

resource "aws_ssoadmin_managed_policy_attachment" "role" {
  for_each = local.roles

  instance_arn       = local.instance_arn
  permission_set_arn = aws_ssoadmin_permission_set.role[each.key].arn
  managed_policy_arn = each.value.policy
}

resource "aws_identitystore_group" "role" {
  for_each = local.roles

  identity_store_id = local.identity_store_id
  display_name      = "${var.project}-${each.key}"
  description       = "Members get the Runway role ${each.key}."
}

resource "aws_ssoadmin_account_assignment" "role" {
  for_each = local.assignments

  instance_arn       = local.instance_arn
  permission_set_arn = aws_ssoadmin_permission_set.role[each.value.role].arn
  principal_type     = "GROUP"
  principal_id       = aws_identitystore_group.role[each.value.role].group_id
  target_type        = "AWS_ACCOUNT"
  target_id          = var.account_ids[each.value.environment]
}
