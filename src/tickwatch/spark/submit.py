"""Entry file for spark-submit: the job with settings from the environment (and `.env`).

    spark-submit --master spark://HOST:7077 --jars "$(tickwatch spark --print-jars)" \\
        src/tickwatch/spark/submit.py

The jars come from spark-submit's `--jars`, the master from `--master`; KAFKA_BOOTSTRAP_SERVERS,
STORE_URL, DATA_DIR and the engine settings from the environment, as for `tickwatch run`.
"""

from __future__ import annotations

import logging

from tickwatch.config import load_settings
from tickwatch.spark.job import JobConfig, run


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    run(JobConfig.from_settings(settings), master=None, jars=[])


if __name__ == "__main__":
    main()
