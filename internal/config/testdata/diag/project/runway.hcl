project "acme" {
  domian = "acme.test"
}
environment "production" {
  target = "aws"
}
notify "ops" {
  webhook = "slack"
}
