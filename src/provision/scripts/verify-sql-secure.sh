{{login}}
sql -e "SET @pw = '$pw';
SELECT 'anonymous', COUNT(*) FROM mysql.user WHERE User = '';
SELECT 'remote-root', IFNULL(GROUP_CONCAT(Host), '-') FROM mysql.user WHERE User = 'root' AND Host NOT IN {{local_root}};
SELECT 'root-not-db-root-pass', COUNT(*) FROM mysql.user WHERE User = 'root' AND Password <> PASSWORD(@pw);
SELECT 'test-database', COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test';
SELECT 'test-grants', COUNT(*) FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';"
