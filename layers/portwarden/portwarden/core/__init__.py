"""The pure core: image reading, analyzers, matching, policy and services.

Nothing under this package may import boto3, botocore, pynamodb or aws_lambda_powertools, nor read
``os.environ``: configuration arrives as validated models, I/O through the protocols in ``ports``.
"""
