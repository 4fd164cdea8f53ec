"""The Pulumi program: one ComponentResource per GCP concern."""
