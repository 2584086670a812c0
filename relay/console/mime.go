package console

import (
	"mime"

	"github.com/emersion/go-message/charset"
)

// mimeDecoder decodes encoded words in every charset mail uses here
// (ISO-2022-JP, Shift_JIS, EUC-JP through go-message's table).
var mimeDecoder = mime.WordDecoder{CharsetReader: charset.Reader}
