"""Files and pixels: decoding and encoding every format and mode (image_io.py, formats.py, native.py),
pixel conversions (pixels.py), where bytes live, local or object storage (storage.py), the LoadImage /
SaveImage / SaveMask / SavePreview steps (io_steps.py), screen copies (display.py) and previews (preview.py)."""
