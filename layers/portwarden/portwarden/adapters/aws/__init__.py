"""AWS adapters: DynamoDB and S3 stores, SNS notifier, Step Functions starter, ECR authentication."""
