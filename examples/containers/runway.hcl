# A container project: the web service is built from its Dockerfile and run
# as containers on the engine the agent finds (DOCKER_HOST, else Docker's or
# podman's socket). `make demo-containers` deploys it on a private podman.
project "shop" {}

environment "development" {
  target = "docker"
}
