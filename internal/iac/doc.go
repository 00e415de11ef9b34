// Package iac writes and drives the OpenTofu/Terraform code of a project's
// aws environments: Generate turns a project, its address plan and its
// resolved services into readable roots and shared modules; Write puts them
// on disk without ever touching files Runway did not write (or that were
// edited by hand, unless forced); CheckReferences and Check are static checks
// over parsed HCL; Runner plans and applies roots in dependency order through
// terraform-exec, preferring tofu over terraform.
package iac
