# One AWS account per environment, in an organizational unit of its own.
# The organization itself must already exist (aws organizations create-organization).

data "aws_organizations_organization" "this" {}

resource "aws_organizations_organizational_unit" "environments" {
  name      = var.unit_name
  parent_id = data.aws_organizations_organization.this.roots[0].id
}

resource "aws_organizations_account" "environment" {
  for_each = var.accounts

  name      = each.key
  email     = each.value.email
  parent_id = aws_organizations_organizational_unit.environments.id

  # Closing an account is a decision for a human, not for a plan.
  close_on_deletion = false

  lifecycle {
    prevent_destroy = true
    ignore_changes  = [role_name]
  }
}
