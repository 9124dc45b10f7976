-- lab, step sql-secure: prints 0 when the secure installation is complete.
SELECT
  (SELECT COUNT(*) FROM mysql.user WHERE User = '')
+ (SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host NOT IN {{local_root}})
+ (SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Password <> PASSWORD(@pw))
+ (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test')
+ (SELECT COUNT(*) FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\_%');
