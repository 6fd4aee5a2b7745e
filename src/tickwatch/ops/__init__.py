"""Operations: supervision, health and data-quality checks shared by the CLI, web and Airflow."""
