DROP FUNCTION ccvec.duplicate_listing();
