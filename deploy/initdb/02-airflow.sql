-- Airflow's metadata database, beside tickwatch's (run once, when the volume is first created).
CREATE DATABASE airflow;
