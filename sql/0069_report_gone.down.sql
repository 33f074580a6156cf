DROP FUNCTION IF EXISTS ccvec.report_gone(uuid[], text);
