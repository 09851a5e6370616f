-- PostgreSQL only (TOAST compression of large values); SQLite stores values as they are.
SELECT 1;
