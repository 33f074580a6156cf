DROP FUNCTION IF EXISTS ccvec.folder_images(text);
