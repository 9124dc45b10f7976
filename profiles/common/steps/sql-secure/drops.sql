-- lab, step sql-secure: the accounts mysql_secure_installation removes, as DROP USER statements.
SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user
WHERE User = '' OR (User = 'root' AND Host NOT IN {{local_root}});
