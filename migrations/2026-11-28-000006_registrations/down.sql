DROP TABLE lot_warranty;
DROP TABLE unit_warranty;
DROP TABLE warranty_extensions;
DROP TABLE registrations;
