DROP FUNCTION IF EXISTS ccvec.revoke_access(text);
DROP FUNCTION IF EXISTS ccvec.grant_access(text, text);
GRANT EXECUTE ON FUNCTION ccvec.create_embedding_index(text, integer, integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION ccvec.drop_embedding_index(text) TO PUBLIC;
ALTER FUNCTION ccvec.create_embedding_index(text, integer, integer) SECURITY INVOKER RESET search_path;
ALTER FUNCTION ccvec.drop_embedding_index(text) SECURITY INVOKER RESET search_path;
DROP FUNCTION IF EXISTS ccvec.index_rebuilt(text);
DROP FUNCTION IF EXISTS ccvec.missing_indexes();
ALTER TABLE ccvec.load_run DROP COLUMN IF EXISTS index_dropped;
