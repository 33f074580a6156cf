DROP FUNCTION ccvec.job_holder(text);
DROP FUNCTION ccvec.job_unlock(text, boolean);
DROP FUNCTION ccvec.job_lock(text, text, boolean);
