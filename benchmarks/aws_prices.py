"""The AWS list prices the benchmarks price their figures with, declared in one place.

All us-east-1, first pricing tier, as listed on 2026-12-07 on each service's pricing page:

- AWS Lambda, https://aws.amazon.com/lambda/pricing/: a charge per request and one per GB-second
  of duration (Arm/Graviton2 or x86); function URLs are included, with no charge of their own.
- Amazon API Gateway, https://aws.amazon.com/api-gateway/pricing/: REST API calls (first 333
  million a month) and HTTP API requests (first 300 million, each request counted per 512 KB).
- Amazon CloudWatch, https://aws.amazon.com/cloudwatch/pricing/: log data ingested (standard
  logs, and Lambda's vended logs in their first 10 TB tier), per GB of uncompressed event bytes.
- Amazon Data Firehose, https://aws.amazon.com/firehose/pricing/: data ingested per GB.
- Amazon S3, https://aws.amazon.com/s3/pricing/: S3 Standard storage per GB-month (first 50 TB).

A GB is 2^30 bytes, as on the bills.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-12-07"
REGION = "us-east-1"
BYTES_PER_GB = 2**30

LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
LAMBDA_USD_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}

# The front door's charge per million requests, by api.type.
FRONT_DOOR_USD_PER_MILLION = {"rest": 3.50, "http": 1.00, "function_url": 0.0}

CLOUDWATCH_LOGS_USD_PER_GB_INGESTED = 0.50
FIREHOSE_USD_PER_GB_INGESTED = 0.029
S3_STANDARD_USD_PER_GB_MONTH = 0.023
