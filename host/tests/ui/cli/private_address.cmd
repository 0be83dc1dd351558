sync postgres --to lake --set host=10.0.0.1 --set user=app --set database=app
