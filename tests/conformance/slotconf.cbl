       IDENTIFICATION DIVISION.
       PROGRAM-ID. SLOTCONF.
      * Records shorter than the file's longest: what a READ leaves in
      * the whole record area. RELATIVE files keep a slot of the
      * longest record's size, INDEXED files the record only; each
      * with a shorter second 01 record and with RECORD VARYING. The
      * record area (but for an INDEXED file's key) is filled with "*"
      * before every READ.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT R01 ASSIGN TO "SLOTREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY RK FILE STATUS FS.
           SELECT RVAR ASSIGN TO "SLOTVAR"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY VK FILE STATUS FS.
           SELECT RSEQ ASSIGN TO "SLOTSEQ"
               ORGANIZATION RELATIVE ACCESS SEQUENTIAL
               FILE STATUS FS.
           SELECT I01 ASSIGN TO "SLOTIDX"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY I01-KEY FILE STATUS FS.
           SELECT IVAR ASSIGN TO "SLOTIVAR"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY IVAR-KEY FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD R01.
       01 R01-REC      PIC X(12).
       01 R01-SHORT    PIC X(5).
       FD RVAR RECORD VARYING IN SIZE FROM 4 TO 16 DEPENDING ON VLEN.
       01 RVAR-REC     PIC X(16).
       FD RSEQ.
       01 RSEQ-REC     PIC X(8).
       01 RSEQ-SHORT   PIC X(3).
       FD I01.
       01 I01-REC.
          05 I01-KEY   PIC X(3).
          05 I01-DATA  PIC X(9).
       01 I01-SHORT    PIC X(6).
       FD IVAR RECORD VARYING IN SIZE FROM 4 TO 16 DEPENDING ON ILEN.
       01 IVAR-REC.
          05 IVAR-KEY  PIC X(3).
          05 IVAR-DATA PIC X(13).
       WORKING-STORAGE SECTION.
       01 FS           PIC XX.
       01 RK           PIC 9(4).
       01 VK           PIC 9(4).
       01 VLEN         PIC 9(4).
       01 ILEN         PIC 9(4).
       PROCEDURE DIVISION.
           OPEN OUTPUT R01 DISPLAY "open output rel " FS
           MOVE 1 TO RK MOVE "full-record-" TO R01-REC
           WRITE R01-REC DISPLAY "write 1 " FS
           MOVE 2 TO RK MOVE "rest-of-area" TO R01-REC
           MOVE "short" TO R01-SHORT
           WRITE R01-SHORT DISPLAY "write 2 short " FS
           MOVE 3 TO RK MOVE ALL "~" TO R01-REC
           MOVE "tiny" TO R01-SHORT
           WRITE R01-SHORT DISPLAY "write 3 short " FS
           CLOSE R01
           OPEN I-O R01 DISPLAY "open i-o rel " FS
           MOVE 2 TO RK PERFORM R01-READ
           MOVE 3 TO RK PERFORM R01-READ
           MOVE 2 TO RK MOVE "REWRITE-AREA" TO R01-REC
           MOVE "again" TO R01-SHORT
           REWRITE R01-SHORT DISPLAY "rewrite 2 short " FS
           MOVE 1 TO RK MOVE "1-rewritten-" TO R01-REC
           MOVE "one" TO R01-SHORT
           REWRITE R01-SHORT DISPLAY "rewrite 1 short " FS
           MOVE 1 TO RK START R01 KEY >= RK DISPLAY "start " FS
           PERFORM R01-NEXT 4 TIMES
           CLOSE R01

           OPEN OUTPUT RVAR DISPLAY "open output rel varying " FS
           MOVE 1 TO VK MOVE "abcdefghijklmnop" TO RVAR-REC
           MOVE 6 TO VLEN PERFORM RVAR-WRITE
           MOVE 2 TO VK MOVE "ABCDEFGHIJKLMNOP" TO RVAR-REC
           MOVE 16 TO VLEN PERFORM RVAR-WRITE
           MOVE 3 TO VK MOVE "0123456789" TO RVAR-REC
           MOVE 4 TO VLEN PERFORM RVAR-WRITE
           CLOSE RVAR
           OPEN I-O RVAR DISPLAY "open i-o rel varying " FS
           MOVE 1 TO VK PERFORM RVAR-READ
           MOVE 3 TO VK PERFORM RVAR-READ
           MOVE 2 TO VK PERFORM RVAR-READ
           MOVE "qrstuvwxyz" TO RVAR-REC MOVE 5 TO VLEN
           REWRITE RVAR-REC DISPLAY "rewrite 2 " FS
           MOVE 3 TO VK MOVE "9876543210zyxwvu" TO RVAR-REC
           MOVE 16 TO VLEN
           REWRITE RVAR-REC DISPLAY "rewrite 3 " FS
           MOVE 1 TO VK START RVAR KEY >= VK DISPLAY "start " FS
           PERFORM RVAR-NEXT 4 TIMES
           CLOSE RVAR

           OPEN OUTPUT RSEQ DISPLAY "open output rel seq " FS
           MOVE "12345678" TO RSEQ-REC
           WRITE RSEQ-REC DISPLAY "write " FS
           MOVE "abc" TO RSEQ-SHORT
           WRITE RSEQ-SHORT DISPLAY "write short " FS
           MOVE SPACES TO RSEQ-REC
           MOVE "xyz" TO RSEQ-SHORT
           WRITE RSEQ-SHORT DISPLAY "write short " FS
           CLOSE RSEQ
           OPEN INPUT RSEQ DISPLAY "open input rel seq " FS
           PERFORM 4 TIMES
              MOVE ALL "*" TO RSEQ-REC
              READ RSEQ
              DISPLAY "read " FS " [" RSEQ-REC "]"
           END-PERFORM
           CLOSE RSEQ

           OPEN OUTPUT I01 DISPLAY "open output idx " FS
           MOVE "K01full-data" TO I01-REC
           WRITE I01-REC DISPLAY "write K01 " FS
           MOVE "K02rest-data" TO I01-REC
           MOVE "K02sht" TO I01-SHORT
           WRITE I01-SHORT DISPLAY "write K02 short " FS
           CLOSE I01
           OPEN I-O I01 DISPLAY "open i-o idx " FS
           MOVE "K02" TO I01-KEY PERFORM I01-READ
           MOVE "K01" TO I01-KEY PERFORM I01-READ
           MOVE "K01-rewrite" TO I01-REC MOVE "K01new" TO I01-SHORT
           REWRITE I01-SHORT DISPLAY "rewrite K01 short " FS
           MOVE "K01" TO I01-KEY PERFORM I01-READ
           MOVE "K02" TO I01-KEY PERFORM I01-READ
           MOVE "K02whole-rec" TO I01-REC
           REWRITE I01-REC DISPLAY "rewrite K02 whole " FS
           MOVE LOW-VALUES TO I01-KEY
           START I01 KEY > I01-KEY DISPLAY "start " FS
           PERFORM 3 TIMES
              MOVE ALL "*" TO I01-REC
              READ I01 NEXT
              DISPLAY "next " FS " [" I01-REC "]"
           END-PERFORM
           CLOSE I01

           OPEN OUTPUT IVAR DISPLAY "open output idx varying " FS
           MOVE "K01abcdefghijklm" TO IVAR-REC MOVE 7 TO ILEN
           WRITE IVAR-REC DISPLAY "write K01 " FS
           MOVE "K02ABCDEFGHIJKLM" TO IVAR-REC MOVE 16 TO ILEN
           WRITE IVAR-REC DISPLAY "write K02 " FS
           CLOSE IVAR
           OPEN INPUT IVAR DISPLAY "open input idx varying " FS
           PERFORM 3 TIMES
              MOVE ALL "*" TO IVAR-REC
              READ IVAR NEXT
              DISPLAY "next " FS " " ILEN " [" IVAR-REC "]"
           END-PERFORM
           MOVE ALL "*" TO IVAR-REC MOVE "K01" TO IVAR-KEY
           READ IVAR DISPLAY "read K01 " FS " " ILEN " [" IVAR-REC "]"
           CLOSE IVAR
           STOP RUN.

       R01-READ.
           MOVE ALL "*" TO R01-REC
           READ R01
           DISPLAY "read " RK " " FS " [" R01-REC "]".
       R01-NEXT.
           MOVE ALL "*" TO R01-REC
           READ R01 NEXT
           DISPLAY "next " FS " " RK " [" R01-REC "]".
       RVAR-WRITE.
           WRITE RVAR-REC
           DISPLAY "write " VK " length " VLEN " " FS.
       RVAR-READ.
           MOVE ALL "*" TO RVAR-REC
           READ RVAR
           DISPLAY "read " VK " " FS " " VLEN " [" RVAR-REC "]".
       RVAR-NEXT.
           MOVE ALL "*" TO RVAR-REC
           READ RVAR NEXT
           DISPLAY "next " FS " " VK " " VLEN " [" RVAR-REC "]".
       I01-READ.
           MOVE ALL "*" TO I01-DATA
           READ I01
           DISPLAY "read " FS " [" I01-REC "]".
