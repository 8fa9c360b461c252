"""Deployments of the pipeline's flows, work pools, and the local Prefect stack."""
