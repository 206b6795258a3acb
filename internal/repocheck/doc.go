// Package repocheck holds the checks of the repository as a whole, in its
// tests: the Dockerfile, docker-compose.yml and deploy/ (Prometheus,
// Grafana and its dashboard, the Kubernetes manifests), and the README's
// configuration table. They belong to no one package of code, so they live
// here rather than beside the command. The package has no code of its own.
package repocheck
