# The web front end, released blue/green with a preview host.
service "web" {
  command = ["./bin/web", "--port", "{{PORT}}"]
  port    = 3000

  health {
    path = "/healthz"
  }

  deploy {
    strategy = "blue_green"
    blue_green {
      preview = true
    }
  }

  environment "staging" {
    command = []
    # Pushed to the environment's ECR repository by CI, pinned by digest.
    image   = "123456789012.dkr.ecr.us-east-2.amazonaws.com/saas/web@sha256:4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180f7e6d5c4b3a291807"
  }

  environment "production" {
    command = []
    # Built here, pushed to the environment's ECR registry, pinned by digest.
    build {
      context = "."
    }
    scale {
      min     = 3
      desired = 4
    }
  }
}
