       IDENTIFICATION DIVISION.
       PROGRAM-ID. VARCONF.
      * Variable-length records (RECORD VARYING ... DEPENDING ON) in
      * INDEXED and RELATIVE files: the DEPENDING ON item after each
      * READ, the length a REWRITE stores, and status 44. The length
      * item is cleared before every READ, so a READ that does not
      * set it shows 0000; only the record's own bytes are shown.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT VIX ASSIGN TO "VARIDX"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY VIX-KEY
               ALTERNATE RECORD KEY VIX-ALT WITH DUPLICATES
               FILE STATUS FS.
           SELECT VREL ASSIGN TO "VARREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY RK FILE STATUS FS.
           SELECT VSEQ ASSIGN TO "VARREL"
               ORGANIZATION RELATIVE ACCESS SEQUENTIAL
               RELATIVE KEY SK FILE STATUS FS.
           SELECT VFLAT ASSIGN TO "VARFLAT"
               ORGANIZATION SEQUENTIAL FILE STATUS FS.
       DATA DIVISION.
       FILE SECTION.
       FD VIX RECORD VARYING IN SIZE FROM 6 TO 24 DEPENDING ON XLEN.
       01 VIX-REC.
          05 VIX-KEY   PIC X(4).
          05 VIX-ALT   PIC X(2).
          05 VIX-DATA  PIC X(18).
       FD VREL RECORD VARYING IN SIZE FROM 5 TO 20 DEPENDING ON RLEN.
       01 VREL-REC     PIC X(20).
       FD VSEQ RECORD VARYING IN SIZE FROM 5 TO 20 DEPENDING ON SLEN.
       01 VSEQ-REC     PIC X(20).
       FD VFLAT RECORD VARYING IN SIZE FROM 5 TO 20 DEPENDING ON FLEN.
       01 VFLAT-REC    PIC X(20).
       01 VFLAT-SHORT  PIC X(8).
       WORKING-STORAGE SECTION.
       01 FS           PIC XX.
       01 RK           PIC 9(4).
       01 SK           PIC 9(4).
       01 XLEN         PIC 9(4).
       01 RLEN         PIC 9(4).
       01 SLEN         PIC 9(4).
       01 FLEN         PIC 9(4).
       01 WHAT         PIC X(16).
       PROCEDURE DIVISION.
           OPEN OUTPUT VIX DISPLAY "open output idx " FS
           MOVE "K001A1first-record-of-18" TO VIX-REC MOVE 10 TO XLEN
           PERFORM XW
           MOVE "K002A1second-record-of-1" TO VIX-REC MOVE 24 TO XLEN
           PERFORM XW
           MOVE "K003B2third" TO VIX-REC MOVE 6 TO XLEN
           PERFORM XW
           MOVE "K004A1fourth" TO VIX-REC MOVE 5 TO XLEN
           PERFORM XW
           MOVE "K002A1dup" TO VIX-REC MOVE 3 TO XLEN
           PERFORM XW
           MOVE "K005A1longer" TO VIX-REC MOVE 99 TO XLEN
           PERFORM XW
           CLOSE VIX
           OPEN I-O VIX DISPLAY "open i-o idx " FS
           MOVE "K001" TO VIX-KEY MOVE "read K001" TO WHAT PERFORM XR
           MOVE "K003" TO VIX-KEY MOVE "read K003" TO WHAT PERFORM XR
           MOVE "K005" TO VIX-KEY MOVE "read K005" TO WHAT PERFORM XR
           MOVE 77 TO XLEN MOVE "K009" TO VIX-KEY
           READ VIX DISPLAY "read K009 " FS " " XLEN
           MOVE "A1" TO VIX-ALT MOVE 0 TO XLEN
           READ VIX KEY IS VIX-ALT
           DISPLAY "read alt A1 " FS " " XLEN
           MOVE "K002" TO VIX-KEY MOVE "read K002" TO WHAT PERFORM XR
           MOVE "short" TO VIX-DATA MOVE 11 TO XLEN
           REWRITE VIX-REC DISPLAY "rewrite K002 to 11 " FS
           MOVE "K003" TO VIX-KEY MOVE "read K003" TO WHAT PERFORM XR
           MOVE "now-much-longer" TO VIX-DATA MOVE 21 TO XLEN
           REWRITE VIX-REC DISPLAY "rewrite K003 to 21 " FS
           MOVE 4 TO XLEN
           REWRITE VIX-REC DISPLAY "rewrite K003 to 4 " FS
           MOVE "K009" TO VIX-KEY MOVE 3 TO XLEN
           REWRITE VIX-REC DISPLAY "rewrite K009 to 3 " FS
           MOVE "K001" TO VIX-KEY MOVE 500 TO XLEN
           REWRITE VIX-REC DISPLAY "rewrite K001 to 500 " FS
           MOVE LOW-VALUES TO VIX-KEY
           START VIX KEY > VIX-KEY DISPLAY "start " FS
           MOVE "next" TO WHAT
           PERFORM XN 6 TIMES
           MOVE "A1" TO VIX-ALT
           START VIX KEY = VIX-ALT DISPLAY "start alt A1 " FS
           MOVE "next by alt" TO WHAT
           PERFORM XN 4 TIMES
           MOVE HIGH-VALUES TO VIX-KEY
           START VIX KEY < VIX-KEY DISPLAY "start < high " FS
           MOVE 0 TO XLEN
           READ VIX PREVIOUS
           MOVE "previous" TO WHAT PERFORM XSHOW
           CLOSE VIX

           OPEN OUTPUT VREL DISPLAY "open output rel " FS
           MOVE 1 TO RK MOVE "ONE-one-ONE-one-ONE-" TO VREL-REC
           MOVE 6 TO RLEN PERFORM RW
           MOVE 2 TO RK MOVE "TWO-two-TWO-two-TWO-" TO VREL-REC
           MOVE 20 TO RLEN PERFORM RW
           MOVE 4 TO RK MOVE "FOUR-four-FOUR-four-" TO VREL-REC
           MOVE 11 TO RLEN PERFORM RW
           MOVE 5 TO RK MOVE "FIVE" TO VREL-REC
           MOVE 4 TO RLEN PERFORM RW
           MOVE 0 TO RK MOVE 3 TO RLEN PERFORM RW
           MOVE 0 TO RK MOVE 8 TO RLEN PERFORM RW
           CLOSE VREL
           OPEN I-O VREL DISPLAY "open i-o rel " FS
           MOVE 1 TO RK MOVE "read 1" TO WHAT PERFORM RR
           MOVE 4 TO RK MOVE "read 4" TO WHAT PERFORM RR
           MOVE 2 TO RK MOVE "read 2" TO WHAT PERFORM RR
           MOVE 55 TO RLEN MOVE 3 TO RK
           READ VREL DISPLAY "read 3 " FS " " RLEN
           MOVE 1 TO RK MOVE "uno-UNO-uno-UNO-uno-" TO VREL-REC
           MOVE 15 TO RLEN
           REWRITE VREL-REC DISPLAY "rewrite 1 to 15 " FS
           MOVE 2 TO RK MOVE "dos-DOS-dos-DOS-dos-" TO VREL-REC
           MOVE 7 TO RLEN
           REWRITE VREL-REC DISPLAY "rewrite 2 to 7 " FS
           MOVE 2 TO RLEN
           REWRITE VREL-REC DISPLAY "rewrite 2 to 2 " FS
           MOVE 1 TO RK MOVE "read 1" TO WHAT PERFORM RR
           MOVE 2 TO RK MOVE "read 2" TO WHAT PERFORM RR
           MOVE 1 TO RK START VREL KEY >= RK DISPLAY "start rel " FS
           MOVE "next rel" TO WHAT
           PERFORM RN 4 TIMES
           CLOSE VREL

           OPEN I-O VSEQ DISPLAY "open i-o seq " FS
           MOVE "seq next" TO WHAT
           PERFORM SN
           MOVE "xx-xx-xx-xx-xx-xx-xx" TO VSEQ-REC MOVE 3 TO SLEN
           REWRITE VSEQ-REC DISPLAY "rewrite seq to 3 " FS
           PERFORM SN
           MOVE "yy-yy-yy-yy-yy-yy-yy" TO VSEQ-REC MOVE 12 TO SLEN
           REWRITE VSEQ-REC DISPLAY "rewrite seq to 12 " FS
           PERFORM SN 3 TIMES
           CLOSE VSEQ
           OPEN INPUT VSEQ
           MOVE "seq again" TO WHAT
           PERFORM SN 4 TIMES
           CLOSE VSEQ

      * A SEQUENTIAL file goes to libcob's own handler under ESFH too.
           OPEN OUTPUT VFLAT DISPLAY "open output flat " FS
           MOVE "flat-one-flat-one-xx" TO VFLAT-REC MOVE 9 TO FLEN
           WRITE VFLAT-REC DISPLAY "write flat 9 " FS
           MOVE "flat-two-flat-two-xx" TO VFLAT-REC MOVE 20 TO FLEN
           WRITE VFLAT-REC DISPLAY "write flat 20 " FS
           MOVE "flat-three" TO VFLAT-SHORT MOVE 8 TO FLEN
           WRITE VFLAT-SHORT DISPLAY "write flat short " FS
           CLOSE VFLAT
           OPEN I-O VFLAT DISPLAY "open i-o flat " FS
           PERFORM FN
           MOVE "FLAT-ONE-FLAT-ONE-XX" TO VFLAT-REC MOVE 12 TO FLEN
           REWRITE VFLAT-REC DISPLAY "rewrite flat to 12 " FS
           MOVE 9 TO FLEN
           REWRITE VFLAT-REC DISPLAY "rewrite flat to 9 " FS
           PERFORM FN
           MOVE "FLAT-TWO" TO VFLAT-SHORT
           REWRITE VFLAT-SHORT DISPLAY "rewrite flat short " FS
           PERFORM FN
           MOVE "FLAT-THRE" TO VFLAT-SHORT
           REWRITE VFLAT-SHORT DISPLAY "rewrite flat short " FS
           CLOSE VFLAT
           OPEN INPUT VFLAT
           PERFORM FN 4 TIMES
           CLOSE VFLAT
           STOP RUN.

       XW.
           WRITE VIX-REC
           DISPLAY "write " VIX-KEY " length " XLEN " " FS.
       XR.
           MOVE 0 TO XLEN
           READ VIX
           PERFORM XSHOW.
       XN.
           MOVE 0 TO XLEN
           READ VIX NEXT
           PERFORM XSHOW.
       XSHOW.
           IF FS = "00" OR FS = "02"
              DISPLAY WHAT " " FS " " XLEN " [" VIX-REC(1:XLEN) "]"
           ELSE
              DISPLAY WHAT " " FS " " XLEN
           END-IF.
       RW.
           WRITE VREL-REC
           DISPLAY "write " RK " length " RLEN " " FS.
       RR.
           MOVE 0 TO RLEN
           READ VREL
           PERFORM RSHOW.
       RN.
           MOVE 0 TO RLEN
           READ VREL NEXT
           PERFORM RSHOW.
       RSHOW.
           IF FS = "00"
              DISPLAY WHAT " " FS " " RK " " RLEN
                      " [" VREL-REC(1:RLEN) "]"
           ELSE
              DISPLAY WHAT " " FS " " RLEN
           END-IF.
       FN.
           MOVE 0 TO FLEN
           READ VFLAT
           IF FS = "00"
              DISPLAY "flat read " FS " " FLEN
                      " [" VFLAT-REC(1:FLEN) "]"
           ELSE
              DISPLAY "flat read " FS " " FLEN
           END-IF.
       SN.
           MOVE 0 TO SLEN
           READ VSEQ NEXT
           IF FS = "00"
              DISPLAY WHAT " " FS " " SK " " SLEN
                      " [" VSEQ-REC(1:SLEN) "]"
           ELSE
              DISPLAY WHAT " " FS " " SLEN
           END-IF.
