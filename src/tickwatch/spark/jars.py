"""The JVM jars the Spark job needs, resolved with Maven from Maven Central into `.cache/maven`.

Two artifacts and their runtime dependencies:

- `org.apache.spark:spark-sql-kafka-0-10_2.13:<Spark version>`: the Kafka source and sink,
  at exactly the version of the installed pyspark (a connector from another Spark release fails
  at run time with missing classes).
- `org.postgresql:postgresql`: the JDBC driver, for reading the store from Spark
  (`spark.read.jdbc`); the job itself upserts through `tickwatch.store.SqlStore`, because
  Spark's JDBC writer can only insert or overwrite, not upsert.

Maven resolves a throwaway POM into the local repository `.cache/maven` (shared with
scripts/kafka.sh) and copies the jars into `.cache/spark/<version>/jars`. Jars whose artifact
pyspark already ships (Scala, slf4j, compression codecs, Hadoop client) are left out, so Spark's
own copies win. The jars are passed to Spark as local files (`spark.jars`): nothing is fetched
at job start once the folder is filled, and Spark's own Ivy resolver is never used.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pyspark

from tickwatch.errors import TickwatchError

log = logging.getLogger(__name__)

SCALA_BINARY = "2.13"
POSTGRES_JDBC_VERSION = "42.7.4"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
_VERSIONED_JAR = re.compile(r"^(?P<artifact>.+?)-\d[\w.\-]*\.jar$")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tickwatch</groupId>
  <artifactId>spark-job-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.spark</groupId>
      <artifactId>spark-sql-kafka-0-10_{scala}</artifactId>
      <version>{spark}</version>
    </dependency>
    <dependency>
      <groupId>org.postgresql</groupId>
      <artifactId>postgresql</artifactId>
      <version>{postgres}</version>
    </dependency>
  </dependencies>
</project>
"""


def spark_version() -> str:
    """The Spark version of the installed pyspark, e.g. "4.3.0"."""
    return pyspark.__version__.split("+")[0]


def default_cache() -> Path:
    """`.cache` of the working tree (TICKWATCH_CACHE overrides, as for scripts/kafka.sh)."""
    return Path(os.environ.get("TICKWATCH_CACHE") or Path.cwd() / ".cache")


def _artifact(jar_name: str) -> str:
    match = _VERSIONED_JAR.match(jar_name)
    return match.group("artifact") if match else jar_name.removesuffix(".jar")


def _bundled_artifacts() -> set[str]:
    folder = Path(pyspark.__file__).parent / "jars"
    return {_artifact(jar.name) for jar in folder.glob("*.jar")}


def resolve_jars(cache: Path | None = None, mvn: str = "mvn") -> list[Path]:
    """Local paths of the Kafka connector, the JDBC driver and what they need, fetched once.

    Raises TickwatchError with Maven's output when resolution fails (e.g. no network on
    first use and an empty cache).
    """
    cache = (cache or default_cache()).resolve()
    version = spark_version()
    target = cache / "spark" / version / "jars"
    done = target / ".complete"
    if done.exists():
        return sorted(target.glob("*.jar"))
    if shutil.which(mvn) is None:
        raise TickwatchError(
            f"{mvn!r} not found: install Maven (Debian package maven) to fetch the Spark jars"
        )
    work = cache / "spark" / version / "pom"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(
        _POM.format(scala=SCALA_BINARY, spark=version, postgres=POSTGRES_JDBC_VERSION)
    )
    staging = cache / "spark" / version / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-B",
        "-q",
        f"-Dmaven.repo.local={cache / 'maven'}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    log.info("resolving Spark %s Kafka connector and PostgreSQL JDBC with Maven", version)
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TickwatchError(
            f"Maven could not resolve the Spark job jars (exit {result.returncode}): "
            f"{(result.stdout + result.stderr)[-2000:]}"
        )
    bundled = _bundled_artifacts()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for jar in staging.glob("*.jar"):
        if _artifact(jar.name) not in bundled:
            jar.rename(target / jar.name)
    shutil.rmtree(staging, ignore_errors=True)
    done.touch()
    jars = sorted(target.glob("*.jar"))
    log.info("Spark job jars: %s", ", ".join(j.name for j in jars))
    return jars
