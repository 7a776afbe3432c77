DROP TABLE custom_achievements CASCADE;
DROP TABLE community_achievements CASCADE;
DROP TABLE images;
DROP TABLE image_blobs;
