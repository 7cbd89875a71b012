"""The learning maths under the roles: plaintext cores that federated protocols reuse unchanged."""
