{{login}}
sql -e "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({{variables}})"
