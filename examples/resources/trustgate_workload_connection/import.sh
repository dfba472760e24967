# A workload connection can be imported by its id or by its name.
terraform import trustgate_workload_connection.deploy 0b7d6a0e-6f4e-4d8c-9a51-2f3c7e1d9b24
terraform import trustgate_workload_connection.deploy github-deploy
