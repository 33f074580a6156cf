DROP FUNCTION ccvec.unscored_images();
