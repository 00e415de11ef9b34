# The API, rolled out instance by instance; its secrets live in Runway's
# secret store (and in Secrets Manager on AWS).
service "api" {
  command = ["./bin/api", "--port", "{{PORT}}"]
  port    = 8080
  secrets = ["DATABASE_URL", "STRIPE_KEY"]

  health {
    path = "/healthz"
  }

  environment "staging" {
    command = []
    image   = "ghcr.io/example/saas-api:2.0.1"
  }

  environment "production" {
    command = []
    image   = "ghcr.io/example/saas-api:2.0.1"
    scale {
      min     = 3
      desired = 6
    }
  }
}
